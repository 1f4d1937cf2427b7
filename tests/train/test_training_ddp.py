"""Two ``torchrun`` processes (gloo, CPU) with batch 1 each follow the loss trajectory of one process with
batch 2: same samples per step, losses normalised over both processes, gradients averaged by DDP."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

WORKER = Path(__file__).with_name("ddp_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def _run(command: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]


def test_two_process_gloo_matches_one_process_with_the_combined_batch(tiny_data, tokenizer_dir, tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    _run([sys.executable, str(WORKER), str(tiny_data), str(tokenizer_dir), str(single), "2"], tmp_path)
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          str(WORKER), str(tiny_data), str(tokenizer_dir), str(ddp), "1"], tmp_path)

    one = json.loads((single / "trajectory.json").read_text())
    two = json.loads((ddp / "trajectory.json").read_text())
    assert len(one["losses"]) == len(two["losses"]) == 4  # 4 clips, global batch 2, 2 epochs
    difference = np.abs(np.array(one["losses"]) - np.array(two["losses"]))
    print(f"losses {one['losses']} vs {two['losses']}: max |diff| {difference.max():.2e}")
    assert difference.max() < 1e-4 * max(one["losses"])
    assert one["losses"][0] != one["losses"][-1]  # it trained
    assert abs(one["best"]["J&F"] - two["best"]["J&F"]) < 0.02

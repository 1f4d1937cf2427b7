"""The bundled model's own tools, apart from the fine-tuning pipeline of ``train/``.

    world/        the generated world it is trained on (shapes, glyphs and blobs on photographs, with expressions)
    bundle.py     ``python -m train.bundled.bundle``: a training run -> the shipped checkpoint (weights + settings)
    ranker.py     ``python -m train.bundled.ranker``: train the candidate ranker on the model's own candidates
    candidates.py ``python -m train.bundled.candidates``: J&F of the model's choice and of the best of its top k
    text_probe.py ``python -m train.bundled.text_probe``: how alike two expressions are to a model's text side
    samples.py    the sample videos the studio ships, rendered from the world
"""

"""The 65 Ref-Youtube-VOS categories: the only ones the official ReferFormer loader knows."""
from __future__ import annotations

YTVOS_CATEGORIES: tuple[str, ...] = (
    "airplane", "ape", "bear", "bike", "bird", "boat", "bucket", "bus", "camel", "cat", "cow", "crocodile",
    "deer", "dog", "dolphin", "duck", "eagle", "earless_seal", "elephant", "fish", "fox", "frisbee", "frog",
    "giant_panda", "giraffe", "hand", "hat", "hedgehog", "horse", "knife", "leopard", "lion", "lizard",
    "monkey", "motorbike", "mouse", "others", "owl", "paddle", "parachute", "parrot", "penguin", "person",
    "plant", "rabbit", "raccoon", "sedan", "shark", "sheep", "sign", "skateboard", "snail", "snake", "snowboard",
    "squirrel", "surfboard", "tennis_racket", "tiger", "toilet", "train", "truck", "turtle", "umbrella", "whale",
    "zebra",
)
OTHERS = "others"


def ytvos_category(category: str) -> str:
    """``category`` when the official loader knows it, else ``others``."""
    return category if category in YTVOS_CATEGORIES else OTHERS

"""ReferFormer Studio's logic without the UI: projects, media import, model runs, review, rendering, export.

``app.py`` wires Gradio widgets to these functions; tests call them directly.
"""

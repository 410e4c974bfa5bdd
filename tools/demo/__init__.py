"""The CPU demo, ``python -m tools.demo``, and the script that pretrained its tiny CLIP."""

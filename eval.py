"""Evaluate a checkpoint: ``python eval.py ckpt_path=outputs/.../checkpoints/best.ckpt``."""

from ssmri.runner.cli import eval_main

if __name__ == "__main__":
    eval_main()

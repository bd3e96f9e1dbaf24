"""Train MoDL with a self-supervised loss: ``python train.py loss=mo_ei``."""

from ssmri.runner.cli import train_main

if __name__ == "__main__":
    train_main()

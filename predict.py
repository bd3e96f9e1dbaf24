"""Reconstruct scans: ``python predict.py ckpt_path=<ckpt> data=<source> data.images.root=<path>``."""

from ssmri.runner.cli import predict_main

if __name__ == "__main__":
    predict_main()

"""Train a text WAE: python train.py [--config FILE] [--out RUN] [--resume] [key=value ...]"""

from textwae.cli.main import train_main

if __name__ == "__main__":
    train_main()

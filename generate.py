"""Use a trained text WAE: python generate.py {sample,reconstruct,interpolate,modes} --model RUN"""

from textwae.cli.main import generate_main

if __name__ == "__main__":
    generate_main()

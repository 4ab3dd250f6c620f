"""Run-directory files: names, atomic writes, safetensors state and the metrics log."""

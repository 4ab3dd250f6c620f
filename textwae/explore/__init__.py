"""The latent explorer (`textwae explore`): a local page over a trained run.

`latent_map` holds the held-out codes and their 2-D projection, `actions` what the page does
with the model (plain functions over the generation API that return data), `figure` draws the
map with plotly, and `page` lays it out with Gradio and serves it. Only `figure` and `page`
need the `explore` extra (`pip install 'textwae[explore]'`).
"""

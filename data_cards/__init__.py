"""Data card templates (Jinja2), installed as ``msrgb_bench.data_cards``."""

"""Dataset build pipelines, installed as ``msrgb_bench.pipelines``.

Public imagery -> Source (fetch, verify, read) -> Recipe (class map, sizes, split rules) ->
build (validate chips, dedup, split, write images, manifest, dataset.json, data card).
"""

"""The Ray Data engine: the curation stages' own logic, run over a ``ray.data.Dataset``.

Every row carries ``_row``, its position in the stage's input, so any stage may move rows between
blocks (a shuffle on id, on band key) and the driver still returns them in input order.
"""

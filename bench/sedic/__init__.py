"""bench/bench_sedic.py's parts.

common    the photo at a size, parameter counts, peak RSS, reading every weight once
children  fresh processes: one component loaded, or the sedic encoder run
decoder   the decoder in the bench's process: step costs part by part, a whole decode
tables    the Markdown tables the bench prints
"""

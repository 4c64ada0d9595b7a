"""bench/bench_fuzz.py's parts: seed packets, mutations, the decoding worker, the report.

seeds      valid packets with every layer kind and reference codec id (and their labels)
mutations  one seed, one mutation: packet i is drawn from its own generator
worker     the child process that decodes packets, and the parent's handle on it (hangs by
           CPU time, crashes by exit)
report     outcomes and times per packet, chunks written and merged, the printed summary
"""

"""A synthetic Integrated Care System: the platform's test bed.

`openphm.synth.generate.generate_ics` builds a seeded, reproducible population with
conditions, frailty, latent risk and years of activity, and writes it as the messy
extracts that real sources send, plus a `truth/` folder the platform never reads.
"""

"""Synthesis and judging (issue 19): so far its filters and diversity figures (`filters`); the `labelmill synth`
and `labelmill judge` pipelines land here next."""

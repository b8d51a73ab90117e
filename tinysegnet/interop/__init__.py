"""Bridges to other frameworks. Each imports its framework lazily: tinysegnet's maths never
depends on them."""

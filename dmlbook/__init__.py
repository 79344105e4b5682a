"""dmlbook: the tested code behind the book's six exercises.

One module per concept; the chapters import these and narrate.
"""

__version__ = "0.1.0"

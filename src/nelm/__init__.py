"""nelm: decision support for neuroendocrine liver metastases (NELM).

The output supports, and does not replace, the judgement of a multidisciplinary tumour board.
"""
__version__ = "0.1.0"

"""Generated data sets: nothing is downloaded. One submodule per task, e.g.
``from attnbook.data.embeddings import toy_word_embeddings``."""

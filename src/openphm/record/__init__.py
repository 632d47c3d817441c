"""The linked person record, built from SQL files by a small runner."""

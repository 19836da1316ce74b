"""The archive search language: a KQL subset (Purview's keyword query language) as a syntax tree."""

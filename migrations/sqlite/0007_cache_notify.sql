-- PostgreSQL's triggers also NOTIFY each cache invalidation (see the PostgreSQL file of
-- this number). SQLite has one node, whose writes evict its own cache at once, so there is
-- nothing to push: this migration only keeps the two backends' numbering in step.
SELECT 1;

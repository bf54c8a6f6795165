-- Schema version 3: a record's provenance names the audit shard that holds
-- its write's record (the origin of the host that committed it), since
-- each host sharing the database numbers its own records. Rows written
-- before have none: they are the one host's of schema 2.
ALTER TABLE records ADD COLUMN origin text;

-- Task logs in chunks (#18): one row per flush of up to 1,000 lines (or
-- 64 KiB) of one try, instead of one row per line, so a task printing a
-- million lines writes about a thousand rows. A line is addressed by its
-- offset in the try (1, 2, …): the chunk holding line n is the one with
-- first_line <= n < first_line + line_count. Readers page by that offset.
CREATE TABLE task_log_chunks (
    ti_id       bigint NOT NULL REFERENCES task_instances(id) ON DELETE CASCADE,
    try_number  integer NOT NULL,
    first_line  bigint NOT NULL,
    line_count  integer NOT NULL CHECK (line_count BETWEEN 1 AND 1000),
    ats         timestamptz[] NOT NULL,  -- each line's time
    sources     text[] NOT NULL,         -- each line's source (stdout, stderr, podflow, …)
    lines       text[] NOT NULL,
    PRIMARY KEY (ti_id, try_number, first_line)
);

-- The one-row-per-line logs written so far become chunks of up to 1,000
-- lines, in their order.
INSERT INTO task_log_chunks (ti_id, try_number, first_line, line_count, ats, sources, lines)
SELECT ti_id, try_number, min(n), count(*),
       array_agg(at ORDER BY n), array_agg(source ORDER BY n), array_agg(line ORDER BY n)
FROM (SELECT ti_id, try_number, at, source, line,
             row_number() OVER (PARTITION BY ti_id, try_number ORDER BY id) AS n
      FROM task_logs) l
GROUP BY ti_id, try_number, (n - 1) / 1000;

DROP TABLE task_logs;

-- Line by line, for SQL by hand (and the tests that look for a line): id is
-- the line's offset in its try. Reading a big log this way unnests every
-- chunk; podflow itself reads chunks.
CREATE VIEW task_logs AS
SELECT c.ti_id, c.try_number, c.first_line + u.n - 1 AS id, u.at, u.source, u.line
FROM task_log_chunks c, unnest(c.ats, c.sources, c.lines) WITH ORDINALITY AS u(at, source, line, n);

-- Pre-aggregated counters (WITHOUT ROWID: one B-tree keyed by the primary
-- key, so an upsert touches one tree instead of a table and an index), maintained by the event writer in the same
-- transaction as the events they count (upserts), so dashboard reports never
-- scan the events table and survive its retention. All times are UTC unix
-- seconds at the start of the hour (or day).

-- Messages per hour, node, verdict and action.
CREATE TABLE stats_hourly (
    hour           INTEGER NOT NULL,
    node           TEXT NOT NULL,
    verdict        TEXT NOT NULL,
    action         TEXT NOT NULL,
    messages       INTEGER NOT NULL,
    bytes          INTEGER NOT NULL,
    latency_sum_us INTEGER NOT NULL,
    latency_max_us INTEGER NOT NULL,
    PRIMARY KEY (hour, node, verdict, action)
) WITHOUT ROWID;

-- Scan latency histogram per hour and node: log-linear buckets (see
-- report::latency_bucket): exact below 16 us, then 8 buckets per power of two.
CREATE TABLE latency_hourly (
    hour     INTEGER NOT NULL,
    node     TEXT NOT NULL,
    bucket   INTEGER NOT NULL,
    messages INTEGER NOT NULL,
    PRIMARY KEY (hour, node, bucket)
) WITHOUT ROWID;

-- Messages per hour in which a threat was found (once per message).
CREATE TABLE threat_hourly (
    hour     INTEGER NOT NULL,
    node     TEXT NOT NULL,
    threat   TEXT NOT NULL,
    engine   TEXT NOT NULL,
    messages INTEGER NOT NULL,
    PRIMARY KEY (hour, node, threat, engine)
) WITHOUT ROWID;

-- Messages per hour in which an engine detected something (once per message).
CREATE TABLE engine_hourly (
    hour     INTEGER NOT NULL,
    node     TEXT NOT NULL,
    engine   TEXT NOT NULL,
    messages INTEGER NOT NULL,
    PRIMARY KEY (hour, node, engine)
) WITHOUT ROWID;

-- Messages per UTC day by sender, recipient, sender domain and recipient
-- domain (kind 's', 'r', 'sd', 'rd'; lowercased). Daily, not hourly: the
-- number of distinct addresses is what makes this table big.
CREATE TABLE address_daily (
    day      INTEGER NOT NULL,
    node     TEXT NOT NULL,
    kind     TEXT NOT NULL,
    value    TEXT NOT NULL,
    messages INTEGER NOT NULL,
    flagged  INTEGER NOT NULL,
    PRIMARY KEY (kind, day, node, value)
) WITHOUT ROWID;

-- Past days whose address rankings have been compacted: only the busiest
-- addresses of each kind and node are kept (see Store::compact_reports).
-- `messages` is the day's total at that time: late events change it, and the
-- day is compacted again.
CREATE TABLE report_compacted (
    day      INTEGER PRIMARY KEY,
    keep     INTEGER NOT NULL,
    messages INTEGER NOT NULL
);

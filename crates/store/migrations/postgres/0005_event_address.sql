-- The addresses of each event, lowercased, so that a message trace by
-- sender, recipient or domain reads an index instead of every event.
-- Filled by a trigger on events (every writer, old or new, keeps it
-- complete); rows are removed with their events by time (expire_events).
CREATE TABLE event_address (
    event_id BIGINT NOT NULL,
    time     BIGINT NOT NULL,
    kind     BIGINT NOT NULL,             -- 0 envelope sender, 1 recipient
    address  TEXT COLLATE "C" NOT NULL,   -- lower(address); byte order for prefix ranges
    domain   TEXT COLLATE "C" NOT NULL    -- after the first '@' ('' without one)
);
CREATE INDEX event_address_address ON event_address (address, kind);
CREATE INDEX event_address_domain ON event_address (domain, kind);
CREATE INDEX event_address_time ON event_address (time);

CREATE FUNCTION mxguard_event_address() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_address (event_id, time, kind, address, domain)
        SELECT NEW.id, NEW.time, 0, a, coalesce(substring(a FROM '^[^@]*@(.*)$'), '')
        FROM (SELECT lower(NEW.mail_from) AS a) s WHERE a <> '';
    INSERT INTO event_address (event_id, time, kind, address, domain)
        SELECT NEW.id, NEW.time, 1, a, coalesce(substring(a FROM '^[^@]*@(.*)$'), '')
        FROM (SELECT DISTINCT lower(r) AS a
              FROM jsonb_array_elements_text(
                  CASE WHEN NEW.rcpts LIKE '[%' THEN NEW.rcpts::jsonb ELSE '[]'::jsonb END) AS r) s
        WHERE a <> '';
    RETURN NULL;
END
$$;
CREATE TRIGGER events_address AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION mxguard_event_address();

-- The events already there.
INSERT INTO event_address (event_id, time, kind, address, domain)
    SELECT id, time, 0, a, coalesce(substring(a FROM '^[^@]*@(.*)$'), '')
    FROM (SELECT id, time, lower(mail_from) AS a FROM events) s WHERE a <> '';
INSERT INTO event_address (event_id, time, kind, address, domain)
    SELECT id, time, 1, a, coalesce(substring(a FROM '^[^@]*@(.*)$'), '')
    FROM (SELECT DISTINCT e.id AS id, e.time AS time, lower(r) AS a
          FROM events e, jsonb_array_elements_text(e.rcpts::jsonb) AS r) s
    WHERE a <> '';

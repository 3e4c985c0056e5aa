-- The addresses of each event, lowercased, so that a message trace by
-- sender, recipient or domain reads an index instead of every event.
-- Filled by a trigger on events (every writer, old or new, keeps it
-- complete); rows are removed with their events by time (expire_events).
CREATE TABLE event_address (
    event_id INTEGER NOT NULL,
    time     INTEGER NOT NULL,
    kind     INTEGER NOT NULL,            -- 0 envelope sender, 1 recipient
    address  TEXT NOT NULL,               -- lower(address)
    domain   TEXT NOT NULL                -- after the first '@' ('' without one)
);
CREATE INDEX event_address_address ON event_address (address, kind);
CREATE INDEX event_address_domain ON event_address (domain, kind);
CREATE INDEX event_address_time ON event_address (time);

CREATE TRIGGER events_address AFTER INSERT ON events BEGIN
    INSERT INTO event_address (event_id, time, kind, address, domain)
        SELECT NEW.id, NEW.time, 0, a,
               CASE WHEN instr(a, '@') > 0 THEN substr(a, instr(a, '@') + 1) ELSE '' END
        FROM (SELECT lower(NEW.mail_from) AS a) WHERE a <> '';
    INSERT INTO event_address (event_id, time, kind, address, domain)
        SELECT NEW.id, NEW.time, 1, a,
               CASE WHEN instr(a, '@') > 0 THEN substr(a, instr(a, '@') + 1) ELSE '' END
        FROM (SELECT DISTINCT lower(value) AS a FROM json_each(
                  CASE WHEN json_valid(NEW.rcpts) THEN NEW.rcpts ELSE '[]' END))
        WHERE a <> '';
END;

-- The events already there.
INSERT INTO event_address (event_id, time, kind, address, domain)
    SELECT id, time, 0, a,
           CASE WHEN instr(a, '@') > 0 THEN substr(a, instr(a, '@') + 1) ELSE '' END
    FROM (SELECT id, time, lower(mail_from) AS a FROM events) WHERE a <> '';
INSERT INTO event_address (event_id, time, kind, address, domain)
    SELECT id, time, 1, a,
           CASE WHEN instr(a, '@') > 0 THEN substr(a, instr(a, '@') + 1) ELSE '' END
    FROM (SELECT DISTINCT e.id AS id, e.time AS time, lower(j.value) AS a
          FROM events e, json_each(CASE WHEN json_valid(e.rcpts) THEN e.rcpts ELSE '[]' END) j)
    WHERE a <> '';

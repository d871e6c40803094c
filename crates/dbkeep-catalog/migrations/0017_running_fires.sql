-- The fires still marked running are few: an index of just those, for the recovery that
-- looks for fires whose instance stopped.
CREATE INDEX fires_running ON fires (id) WHERE outcome = 'running';

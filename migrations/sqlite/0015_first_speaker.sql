-- Who speaks first on a one-channel recording (issue 16): set at upload (`speakers`) or by QA
-- naming the manager of a separated call. NULL lets the roles rule decide; a stereo call's
-- channel map decides its roles and ignores this.
ALTER TABLE calls ADD COLUMN first_speaker TEXT CHECK (first_speaker IN ('manager', 'client'));

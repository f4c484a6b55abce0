-- Speaker separation of mono calls (issue 16): a voice whose role is not known is stored as
-- speaker_1 .. speaker_4, in the transcript and in the search index.
ALTER TABLE search_segments DROP CONSTRAINT search_segments_speaker_check;
ALTER TABLE search_segments ADD CONSTRAINT search_segments_speaker_check
    CHECK (speaker IN ('manager', 'client', 'unknown', 'speaker_1', 'speaker_2', 'speaker_3', 'speaker_4'));

"""The AG-UI projection of a session (docs/protocol.md section 13): pure converters from the
hub's frames to AG-UI protocol events (:mod:`.patches`, :mod:`.projection`), and the
stream that follows one session for the ``/sessions/{id}/ag-ui`` endpoint
(:mod:`.stream`)."""

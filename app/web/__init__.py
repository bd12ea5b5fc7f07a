"""The Gradio front end: the page (:mod:`.page`), its handlers, the three API endpoints, the select panel,
the results a run shows (:mod:`.results`) and serving it (:mod:`.serving`). A thin layer over the pipeline:
nothing below it imports it."""

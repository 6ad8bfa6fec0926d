"""The v1 API contract shared by the custom server and the FastAPI reference app.

Both servers declare their routes with the models of ``llmstruct.api.models`` and
turn validation failures into 422 bodies with the helpers there, so the two answer
alike down to the ``loc`` and ``type`` of every validation error.
"""

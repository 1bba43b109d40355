"""The results wing: tables and claims from the measurements, figures, the report, records,
compare, replay and the budget simulation. Reads tables; never imports the learning or board code."""

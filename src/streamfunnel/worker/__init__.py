"""The live worker: Faust agents around the funnel engine.

``processing`` holds the per-partition logic and knows nothing of Faust;
``app`` wires it to Faust topics, a changelog-backed table and the web server.
"""

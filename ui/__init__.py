"""The app\x27s user interface: one module per tab, each with its builder and its handlers; app.py assembles them."""

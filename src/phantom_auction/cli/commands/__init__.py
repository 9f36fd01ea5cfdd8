"""One module per command. Every module here is imported by ``phantom_auction.cli`` and
registers its command(s) on :data:`phantom_auction.cli.app.app`, so adding a command is
adding a file here. Heavy imports (numpy, pandas, the simulator) go inside the command.
"""

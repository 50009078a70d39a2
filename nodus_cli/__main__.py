from nodus_cli.cli.app import main

main()

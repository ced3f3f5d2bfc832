from labelmill.cli.commands import main

main()

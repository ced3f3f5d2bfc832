from labelmill.cli import main

main()

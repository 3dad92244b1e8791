from genfields.cli import main

main()

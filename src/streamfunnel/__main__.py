from streamfunnel.cli import main

main()

from cybergine.cli import main

main()

export KILN_EXEC_PATH="$PWD/examples/stages"

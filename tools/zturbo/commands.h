/* tools/zturbo/commands.h — the subcommands of bin/zturbo, one line each:
 * ZT_COMMAND(name, function, one-line summary). Each function lives in
 * tools/zturbo/cmd_<name>.c with the signature int fn(int argc, char **argv)
 * (argv[0] is the subcommand name) and returns the process exit code. */
ZT_COMMAND(tokenize, cmd_tokenize, "text to Qwen3 token ids (--chat: Z-Image prompt template)")

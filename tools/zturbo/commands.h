/* tools/zturbo/commands.h — the subcommands of bin/zturbo, one line each:
 * ZT_COMMAND(name, function, one-line summary). Each function lives in
 * tools/zturbo/cmd_<name>.c with the signature int fn(int argc, char **argv)
 * (argv[0] is the subcommand name) and returns the process exit code. */
ZT_COMMAND(pack, cmd_pack, "pack a Hugging Face snapshot into a zturbo block store")
ZT_COMMAND(info, cmd_info, "show the GPU, free VRAM, pinned-memory limit and io_uring availability")
ZT_COMMAND(generate, cmd_generate, "generate an image from a prompt (PNG with the parameters embedded)")
ZT_COMMAND(tokenize, cmd_tokenize, "text to Qwen3 token ids (--chat: Z-Image prompt template)")
ZT_COMMAND(verify, cmd_verify, "check a downloaded snapshot against the md5 manifest of the official release")
ZT_COMMAND(plan, cmd_plan, "print the residency plan generate would use (no weights loaded)")
ZT_COMMAND(serve, cmd_serve, "keep the model loaded and answer the AUTOMATIC1111 and OpenAI image APIs over HTTP")

/* server.c - placeholder until the server engine lands (being written now). */
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void sb_server_config_init(struct sb_server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen_host = "127.0.0.1";
    cfg->listen_port = 9092;
    cfg->max_message_bytes = 1048588;
    cfg->max_request_bytes = 100u << 20;
    cfg->max_connections = 10000;
    cfg->auto_create_topics = true;
    cfg->default_partitions = 1;
}

int sb_server_start(struct sb_bus *bus, const struct sb_server_config *cfg, struct sb_server **out)
{
    (void)bus;
    (void)cfg;
    *out = NULL;
    return -ENOSYS;
}

int sb_server_stop(struct sb_server *srv)
{
    (void)srv;
    return 0;
}

int sb_server_metrics(struct sb_server *srv, char **text, size_t *len)
{
    (void)srv;
    *text = strdup("# no metrics yet\n");
    if (!*text)
        return -ENOMEM;
    *len = strlen(*text);
    return 0;
}

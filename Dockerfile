# A small static image of upu: built with the Go toolchain, run from
# distroless (no shell, no package manager), as a non-root user.
#
#   docker build -t upu .
#   docker run --rm -p 7700:7700 -p 6379:6379 -v upu-data:/data upu
#
# The default command serves one node. A domain of several needs each node
# to bind an address the others can dial: deploy/docker-compose.yml does it
# with fixed addresses on its own network.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/upu ./cmd/upu

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/upu /usr/local/bin/upu
VOLUME /data
# 7700 binary protocol, 7946 gossip (TCP and UDP), 6379 Redis protocol, 9090 metrics.
EXPOSE 7700 7946 7946/udp 6379 9090
ENTRYPOINT ["/usr/local/bin/upu"]
CMD ["serve", "--data-dir", "/data", "--addr", "0.0.0.0:7700", "--gossip-addr", "127.0.0.1:7946", \
     "--resp-addr", "0.0.0.0:6379", "--http-addr", "0.0.0.0:9090"]

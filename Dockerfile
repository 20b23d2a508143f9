# resumeproxy in a container (README, "Run as a service"); not built in CI.
#   docker build -t resumeproxy .
#   docker run -d -p 3128:3128 -v resumeproxy-cache:/var/cache/resumeproxy \
#     -v $PWD/config.yaml:/etc/resumeproxy/config.yaml:ro resumeproxy
# config.yaml must listen on 0.0.0.0:3128 and allow your clients' networks:
# from inside the container every client is beyond loopback.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# No .git in the build context (.dockerignore): `resumeproxy version`
# shows the module version only.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -o /out/resumeproxy . \
 && mkdir -p /out/cache

# distroless: no shell, CA certificates for upstream TLS, user nonroot (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/resumeproxy /usr/local/bin/resumeproxy
COPY --from=build --chown=65532:65532 /out/cache /var/cache/resumeproxy
COPY config.example.yaml /etc/resumeproxy/config.example.yaml
USER 65532:65532
VOLUME /var/cache/resumeproxy
EXPOSE 3128
ENTRYPOINT ["/usr/local/bin/resumeproxy", "--cache-dir", "/var/cache/resumeproxy"]
CMD ["--config", "/etc/resumeproxy/config.yaml"]

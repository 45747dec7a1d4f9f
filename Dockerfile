# A slim image with the `eddy` binary.
#   docker build -t eddy .
#   docker run --rm -v "$PWD:/work" -w /work eddy run examples/quickstart.yaml
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin eddy && strip target/release/eddy

FROM debian:bookworm-slim
RUN useradd --create-home --uid 10001 eddy
COPY --from=build /src/target/release/eddy /usr/local/bin/eddy
USER eddy
WORKDIR /home/eddy
ENTRYPOINT ["eddy"]
CMD ["--help"]

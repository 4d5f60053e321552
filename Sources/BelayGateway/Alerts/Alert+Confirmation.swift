extension Alert.Kind {
    /// The other system rejected a delivery (`ack.failure`): it is dead with the provider's reason.
    public static let rejected = Alert.Kind(rawValue: "delivery.rejected")
}

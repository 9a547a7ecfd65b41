//! The customer read model as the WhatsApp bridge's [`CustomerDirectory`]: who is writing, by
//! their phone, by the account number they gave, or by the id their conversation was linked to.

use async_trait::async_trait;
use domain::account::AccountNumber;
use domain::conversation::{CustomerDirectory, KnownCustomer};
use domain::phone::PhoneNumber;

use crate::customers::Customer;
use crate::read_models::ReadModels;

fn known(customer: Customer) -> KnownCustomer {
    let site = customer.site.map(|s| s.as_str().to_string()).or_else(|| {
        // The account number ends with the site code (`0045MAK`).
        customer
            .account_numbers
            .first()
            .and_then(|a| AccountNumber::parse(a).ok())
            .map(|a| a.site().as_str().to_string())
    });
    KnownCustomer {
        customer_id: customer.customer_id,
        first_name: customer.first_name.unwrap_or_default(),
        last_name: customer.last_name.unwrap_or_default(),
        site,
        plot: customer.plot_number,
    }
}

/// The one customer among `found` the message can be from: the only one, or the only one not
/// terminated. Several candidates are none: the bridge then asks for the account number rather
/// than guess (a guess would put one customer's words on another's ticket).
fn the_one(found: Vec<Customer>) -> Option<KnownCustomer> {
    if found.len() == 1 {
        return found.into_iter().next().map(known);
    }
    let mut active: Vec<Customer> = found.into_iter().filter(|c| !c.terminated).collect();
    if active.len() == 1 {
        return active.pop().map(known);
    }
    None
}

#[async_trait]
impl CustomerDirectory for ReadModels {
    async fn by_phone(&self, phone: &PhoneNumber) -> Result<Option<KnownCustomer>, String> {
        self.customers_by_phone(phone)
            .await
            .map(the_one)
            .map_err(|e| e.to_string())
    }

    async fn by_account(&self, account: &AccountNumber) -> Result<Option<KnownCustomer>, String> {
        self.customers_by_account(account.as_str())
            .await
            .map(the_one)
            .map_err(|e| e.to_string())
    }

    async fn by_id(&self, customer_id: i64) -> Result<Option<KnownCustomer>, String> {
        self.customer_by_id(customer_id)
            .await
            .map(|c| c.map(known))
            .map_err(|e| e.to_string())
    }
}
